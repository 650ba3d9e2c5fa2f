-- The floor's one-row insert (one commit per request).
wrk.method = "POST"
wrk.path = "/insert"
