"""The outside world: scenario files, trace readers and writers, run directories, exports."""
