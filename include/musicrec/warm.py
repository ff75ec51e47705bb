"""Loaded once by the extraction pool's fork server: the analysis code imported and compiled there, so
every worker forked from it starts warm instead of importing librosa and compiling on its own."""

from musicrec import extract

extract.warm_up()
