"""The interactive demo: the task models answering live, each compute unit side by side (terminal and web).

`session.py` loads the units once and lets them answer one after another; `scenarios.py` holds what each
scenario asks and its real example texts; `terminal.py` and `web.py` are the two fronts.
"""
