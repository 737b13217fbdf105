"""omni-caption: Parquet datasets of captions, transcripts and reasoning traces from long audio.

The code lives in the rooms at the top of the repository (captioner, model,
pipelines, schemas, cli); they install as subpackages of this namespace.
"""

__version__ = "0.1.0"
