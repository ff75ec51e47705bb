"""Loaded once by the extraction pool's fork server: the analysis code imported and its tables loaded
there, so every worker forked from it starts warm."""

from musicrec.analysis import extract

extract.warm_up()
