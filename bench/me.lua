-- wrk script: GET /v1/me with a session token (SESSION).
local session = os.getenv("SESSION")
wrk.headers["Authorization"] = "Bearer " .. session
response = function(status, headers, body)
  if status ~= 200 then io.stderr:write("non-200: " .. status .. "\n") end
end
