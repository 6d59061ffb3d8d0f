"""tidewise.traffic: network traffic under concept drift.

A lab that makes real, labelled, drifting traffic (lab.py, apps.py, netns.py, relay.py), nfstream
flow tables (flows.py), classifiers (classify.py), per-flow and per-window drift detection
(detect.py), the evaluation protocol (evaluate.py), reports (report.py) and the CLI sub-app (app.py).
Importing the package needs only tidewise's core dependencies; nfstream loads lazily.
"""
