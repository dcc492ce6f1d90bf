"""Item pipelines, in run order: validate -> clean -> dedupe -> tag -> store."""
