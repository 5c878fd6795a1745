"""τ²-bench interoperability: replay τ²-bench action lists on a domain's environment and read
τ²-bench's conformance corpus (gold actions with their exact answers and database diffs);
import τ²-bench's tasks as a run directory (`eigen import tau2`: data.py reads the folder,
importer.py writes the run, records.py rebuilds and verifies a record) and grade them by
τ²-bench's rule (grade.py, what `eigen eval` uses).

    from runtime.tau2.replay import replay
    r = replay(spec, [{"name": "get_user_details", "arguments": {...}, "requestor": "assistant"}],
               db="db.json")
    r.calls, r.db, r.user_db
"""
