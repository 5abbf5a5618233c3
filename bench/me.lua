-- wrk script: GET /v1/me with a session token (SESSION).
local session = os.getenv("SESSION")
request = function()
  return wrk.format("GET", "/v1/me", { ["Authorization"] = "Bearer " .. session })
end
