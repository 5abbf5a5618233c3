-- wrk script: GET /healthz built per request by a Lua function, so the client
-- does the same kind of per-request work as for the other endpoints and the
-- ceiling is not inflated by a cheaper client.
request = function()
  return wrk.format("GET", "/healthz")
end
