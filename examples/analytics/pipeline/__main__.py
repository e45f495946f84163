from pipeline.report import AWARDS, r_summary, render

print(render(AWARDS))
print(r_summary(AWARDS))
