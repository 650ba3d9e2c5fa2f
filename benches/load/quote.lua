-- POST /v1/lots/{lot}/quote for a 2-hour stay (10:00-12:00 Shanghai time, one day-rate line).
dofile(os.getenv("QRPARK_LOAD_DATA"))
wrk.method = "POST"
wrk.path = "/v1/lots/" .. lot_id .. "/quote"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"start":"2026-12-01T10:00:00+08:00","end":"2026-12-01T12:00:00+08:00"}'
