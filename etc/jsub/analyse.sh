#!/bin/bash
# A toy analysis: copies its parameters into the result file named by $2.
set -eu
echo "analysing $1 on $(hostname)"
{ echo "result of sub-job ${JSUB_JOBID}"; cat "$1"; } > "$2"
