-- wrk script: POST a small chat completion; STREAM=1 in the environment asks for SSE.
local stream = os.getenv("STREAM") == "1"
local key = os.getenv("AIGW_KEY") or "sk-bench"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark in five words"}]' .. (stream and ',"stream":true' or '') .. '}'
