"""emoscope's version and the run-folder format it writes and reads."""

__version__ = "0.1.0"
# Run folders record this; a run folder with another major format is refused by `predict`.
RUN_FORMAT_VERSION = 1
