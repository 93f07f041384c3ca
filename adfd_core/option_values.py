"""Value sets of command-line choices that the core defines, in a module that imports nothing heavy:
the CLI lists them in ``--help`` as it starts, before numpy or the audio stack is loaded."""

FORMATS = ("tsv", "jsonl", "asvspoof2019", "asvspoof2021", "asvspoof5")  # score-table formats (adfd_core.scoretable)
GROUP_FIELDS = ("group", "speaker", "id")  # what a split keeps on one side (adfd_core.splits)
