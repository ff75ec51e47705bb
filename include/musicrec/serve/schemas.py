"""The API's answers, as pydantic models: what the OpenAPI page documents and every response is checked against."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Track(BaseModel):
    track_key: str = Field(description="the file's path relative to the library")
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    folder: str
    file: str
    duration_s: float | None
    key: str | None = Field(None, description="the estimated key, e.g. 'A minor' (from the mean chroma)")
    bpm: float | None = Field(None, description="the estimated tempo, beats a minute")
    tempo_confidence: float | None = Field(None, description="how surely the onsets repeat at that tempo, 0 to 1")
    loudness_lufs: float | None = Field(None, description="integrated loudness (EBU R128) of the mono mix, LUFS")
    energy: float | None = Field(None, description="the signal's RMS as decoded, 0 to 1")
    tags: list[str] = Field(default_factory=list, description="the network's likeliest tags for it, at most 3")


class TrackPage(BaseModel):
    total: int
    page: int
    size: int
    items: list[Track]


class Reason(BaseModel):
    group: str = Field(description="a group of audio features")
    relative_difference: float = Field(description="the two tracks' difference in it, 1.0 being the library's typical")


class Neighbour(Track):
    rank: int
    distance: float
    similarity: float = Field(description="1 for the same sound, 0 for the most different (OpenSubsonic's sense)")
    why: list[Reason] = Field(default_factory=list, description="the feature groups that bring it closest")


class Neighbours(BaseModel):
    track: Track
    k: int
    computed: bool = Field(description="computed from the embedding (k above the stored neighbours, or filters)")
    neighbours: list[Neighbour]


class IndexInfo(BaseModel):
    run_id: str
    built_at: str | None
    tracks: int
    audio_hours: float
    feature_version: str
    neighbours_stored: int
    metric: str
    hubness: str
    evaluation: dict[str, float | str | None]


class MapPoint(BaseModel):
    track_key: str
    title: str | None
    folder: str
    genre: str | None
    tags: list[str] = Field(default_factory=list)
    x: float
    y: float


class SimilarToFile(BaseModel):
    file: str
    duration_s: float
    same_audio_as: list[str] = Field(description="tracks of the index with this very audio (left out of neighbours)")
    neighbours: list[Neighbour]


class PlaylistTrack(Track):
    position: int
    step_distance: float


class Playlist(BaseModel):
    seed: str
    tracks: list[PlaylistTrack]
    note: str | None


class PathTrack(PlaylistTrack):
    ideal_distance: float = Field(description="the track's distance from its evenly spaced point (0 at a stop)")


class TrackPath(BaseModel):
    stops: list[str] = Field(description="the track keys it starts at, passes through and ends at")
    tracks: list[PathTrack]
    largest_step: float = Field(description="the largest distance from one track to the next: how smooth it is")
    note: str | None


class RadioTrack(Track):
    position: int
    seed: str = Field(description="the seed whose turn brought it")
    distance: float = Field(description="from that seed, as the index ranks")


class Radio(BaseModel):
    seeds: list[str] = Field(description="the track keys the seeds named")
    tracks: list[RadioTrack]
    note: str | None


class TaggedTrack(Track):
    score: float = Field(description="the geometric mean of its probabilities for the tags named, 0 to 1")
    tag_probabilities: dict[str, float] = Field(description="its probability for each tag named")


class TagSearch(BaseModel):
    tags: list[str] = Field(description="the tags the words named")
    unknown: list[str] = Field(description="the words that named no tag, left out")
    tracks: list[TaggedTrack]
    note: str | None


class MixSummary(BaseModel):
    mix: int = Field(description="its number, biggest mix first")
    name: str = Field(description="from the tags most of its tracks have")
    tracks: int
    duration_s: float
    first: str = Field(description="the track key it starts with")


class Mixes(BaseModel):
    mixes: list[MixSummary]


class Mix(BaseModel):
    mix: int
    name: str
    tracks: list[PlaylistTrack]
    note: str | None


class DuplicateFile(Track):
    canonical: bool = Field(description="the file that stands for the recording (lossless, higher bitrate, longer)")
    bit_error_rate: float | None = Field(description="its fingerprint's bits that differ from the kept file's, aligned")
    offset_s: float | None = Field(description="how far its start is from the kept file's")
    overlap_s: float | None = Field(description="the stretch compared")


class DuplicateGroup(BaseModel):
    recording: int
    canonical: str = Field(description="the track key of the file kept")
    files: list[DuplicateFile]


class DuplicateGroups(BaseModel):
    groups: list[DuplicateGroup]
    files: int
    note: str | None
