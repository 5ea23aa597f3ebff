"""Labeling: stratified pairwise tasks, calibration on anchors, agreement tracking, exclusion, export."""
