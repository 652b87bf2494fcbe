"""The benchmark behind ``make bench``: one module per figure, run by ``__main__``."""
