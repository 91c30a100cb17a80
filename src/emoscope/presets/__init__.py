"""The packaged presets (`--preset NAME`): YAML files of configuration fields, each choice explained."""
