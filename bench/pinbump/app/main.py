import numpy, six
print(numpy.__version__, six.__version__)
