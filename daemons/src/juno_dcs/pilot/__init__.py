"""The pilot (getJob, stage-in, payload under a memory limit, stage-out, updateJob) and the pilot factory."""
