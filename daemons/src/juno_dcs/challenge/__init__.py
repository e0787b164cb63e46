"""`juno-dcs challenge`: the JUNO DCS paper's first data challenge on a running grid, as one command.

    measure.py   sizes, samples, phases, throughput over time (pure functions)
    data.py      the challenge's files: written at the source, registered in one raw block, removed
    bare.py      the same bytes by `curl -X COPY` between the same XRootD servers
    run.py       the run: prepare, bare copies, Rucio rules sampled until OK, clean up -> ChallengeResult
    report.py    HOME/reports/challenge-<time>/index.html with the figures

docs/challenge.md is the user's guide.
"""
