"""Production feedback: ingest flagged outputs, route a share to review, watch for drift.

ingest (file and HTTP) -> review (sampled grading tasks) -> route (comparison tasks for the next
labeling batch); drift and the reward model's accuracy on production labels are checked by
`tether feedback drift` and by `tether loop`.
"""
