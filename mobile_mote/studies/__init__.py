"""Studies over a whole space: tables of components, rank agreement, references a benchmark gives.

What the tools under ``tools/`` compute lives here, tested with the package; a tool is its argparse
plus one call.
"""
