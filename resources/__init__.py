"""TextPromptIR's shipped files, installed as the package `textpromptir_resources` (see textpromptir/resources.py)."""
