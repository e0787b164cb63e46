"""Nagios-style probes of the JUNO grid: exit 0/1/2/3 (OK, WARNING, CRITICAL, UNKNOWN), one status line,
perfdata after a `|`. Each probe is a testable `check(...) -> Result` plus a thin command-line wrapper;
probes talk to services through their public interfaces (HTTP, the Rucio client), never their tables."""
