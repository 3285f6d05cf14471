-- wrk script for benchmarks/scale.py: a device API load of update checks, downloads and reports.
--
--   wrk -t2 -c1000 -d60s -s wrk_mix.lua URL -- KEY SALT LABEL HASH BLOB_PATH CHECKS DOWNLOADS REPORTS [PAUSE_MS]
--
-- Out of every 100 requests, CHECKS are update checks (/v1/update-check from a device on LABEL/HASH, or
-- on the embedded bundle for every other one), DOWNLOADS are GETs of BLOB_PATH (the CDN stand-in answers
-- them) and REPORTS are POST /v1/report ("downloaded" or "installed" of LABEL). Every request has its own
-- client id "<SALT>-t<thread>-<counter>". With PAUSE_MS, each connection (a device) waits a random 0 to
-- 2 x PAUSE_MS before each request (a device that also does other things), instead of asking again at once;
-- wrk's latencies never include that wait. done() prints "WRK_RESULT {json}" like wrk_clients.lua.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_common.lua")

local counter = 0
local prefix = ""
local key, label, hash, blob = "", "", "", ""
local checks, downloads = 100, 0
local pause = 0

function init(args)
  key, label, hash, blob = args[1], args[3], args[4], args[5]
  prefix = string.format("%s-t%02d-", args[2], tid)
  checks, downloads = tonumber(args[6]), tonumber(args[7])
  pause = tonumber(args[9] or "0")
  math.randomseed(tid * 7919 + os.time())
end

function delay()
  if pause > 0 then
    return math.random(0, 2 * pause)
  end
  return 0
end

function request()
  counter = counter + 1
  local client = prefix .. string.format("%010d", counter)
  local slot = counter % 100
  if slot < checks then
    local on = ""
    if counter % 2 == 0 then
      on = "&label=" .. label .. "&package_hash=" .. hash
    end
    return wrk.format("GET", "/v1/update-check?deployment_key=" .. key .. "&app_version=1.0.0" .. on
      .. "&client_id=" .. client)
  elseif slot < checks + downloads then
    return wrk.format("GET", blob)
  end
  local status = "downloaded"
  if counter % 2 == 0 then
    status = "installed"
  end
  local body = '{"deployment_key":"' .. key .. '","label":"' .. label .. '","status":"' .. status
    .. '","client_id":"' .. client .. '"}'
  return wrk.format("POST", "/v1/report", { ["Content-Type"] = "application/json" }, body)
end
