"""Running a pipeline on Ray: planning, tasks, commits, progress."""
