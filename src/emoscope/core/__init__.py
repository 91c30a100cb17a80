"""The core that every stage may import and that needs no torch: errors, option vocabularies, the typed
configuration with its presets, the version, and the names, writers and readers of a run folder's files."""
