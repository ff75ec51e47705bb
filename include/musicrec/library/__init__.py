"""The music library and what is said about it.

discover      the library's audio files, what changed since the last index, the shards
tags          tags read from the files (mutagen)
metadata      the metadata file read and cleaned: names, genres, years, artist spellings merged
expectations  the Great Expectations suite the cleaned metadata must pass
"""
