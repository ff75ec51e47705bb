"""Answers from a published index (the CLI's queries and the page's API).

query     the published index loaded once: tracks, neighbours, filters, the map
similar   tracks that sound like a file outside the index
playlist  a walk from a seed, with artists and albums spaced
explain   why two tracks are neighbours, feature group by group
export    the index as CSV, JSON or Parquet
schemas   the API's response models
"""
