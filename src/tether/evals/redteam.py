"""Red-teaming for reward hacking: find outputs the reward model loves and the graders reject, and
send them to labeling as targeted hard-case comparisons.

    search(project, policy="latest")        # automated: samples + probe edits, ranked by gap
    submit(project, Path("found.jsonl"))    # findings from red-teamers in a file (the web app: /redteam)
    route(project, top=50)                  # the top open findings -> a labeling batch, origin "redteam"

The gap is `redteam_gap`'s: how many standard deviations higher the reward model places an output
than the independent graders do. See docs/redteam.md.
"""

from tether.evals.redteam_gap import GapScale, top_candidates
from tether.evals.redteam_route import RouteResult, route
from tether.evals.redteam_search import SearchResult, search
from tether.evals.redteam_submit import LineError, SubmitResult, submit

__all__ = [
    "GapScale",
    "LineError",
    "RouteResult",
    "SearchResult",
    "SubmitResult",
    "route",
    "search",
    "submit",
    "top_candidates",
]
