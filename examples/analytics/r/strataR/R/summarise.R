summarise_counts <- function(x) table(x)
