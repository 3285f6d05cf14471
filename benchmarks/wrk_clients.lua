-- wrk script for benchmarks/update_check.py: every request is an update check from a new device.
--
--   wrk -t2 -c32 -d10s -s wrk_clients.lua URL -- PROTOCOL DEPLOYMENT_KEY SALT STATE [STATE ...]
--
-- PROTOCOL is "native" (/v1/update-check), "codepush" (/v0.1/public/codepush/update_check, as
-- react-native-code-push >= 5.7 asks) or "expo" (/expo/<key> with expo-updates' headers; each STATE is
-- then the update id a device runs, empty for its embedded update). "expo-returning" is "expo" from a
-- fleet of RETURNING devices that check in again and again (each keeps its state), as apps do at every
-- start: the server has recorded what each runs after its first check.
-- Each STATE is "label:package_hash" (either may be empty) and describes the bundle a device runs; the
-- requests cycle through them. client_id is "<SALT>-t<thread>-<counter>", fixed-width, so every request
-- of a run has a distinct id and the same URL length whichever server is measured. done() prints one line
-- "WRK_RESULT {json}" with requests, duration, socket errors, non-200 answers and latency percentiles.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_common.lua")

local paths = {}
local counter = 0
local client_prefix = ""
local expo = nil
local RETURNING = 7000 -- devices per thread of "expo-returning" (RETURNING_PER_THREAD in update_check.py);
                       -- a multiple of the 7 states the benchmark passes, so each device keeps its state
local embedded = "9433b1ed-4006-46b8-8aa7-fdc7eeb203fd"

local function expo_headers(current)
  return {
    ["Accept"] = "multipart/mixed,application/expo+json,application/json",
    ["Expo-Platform"] = "ios",
    ["Expo-Protocol-Version"] = "1",
    ["Expo-API-Version"] = "1",
    ["Expo-Updates-Environment"] = "BARE",
    ["Expo-Runtime-Version"] = "1.0.0",
    ["Expo-Current-Update-ID"] = current ~= "" and current or embedded,
    ["Expo-Embedded-Update-ID"] = embedded,
  }
end

function init(args)
  local protocol = args[1]
  local key = args[2]
  client_prefix = string.format("%s-t%02d-", args[3], tid)
  if protocol == "expo" or protocol == "expo-returning" then
    expo = { path = "/expo/" .. key, states = {}, pool = protocol == "expo-returning" and RETURNING or nil }
    for i = 4, #args do
      expo.states[#expo.states + 1] = expo_headers(args[i])
    end
    if #expo.states == 0 then
      expo.states[1] = expo_headers("")
    end
    return
  end
  local route, client = "/v1/update-check?", "&client_id="
  if protocol == "codepush" then
    route, client = "/v0.1/public/codepush/update_check?", "&client_unique_id="
  end
  for i = 4, #args do
    local label, hash = string.match(args[i], "^([^:]*):(.*)$")
    paths[#paths + 1] = route .. "deployment_key=" .. key .. "&app_version=1.0.0&label=" .. label
      .. "&package_hash=" .. hash .. client .. client_prefix
  end
  if #paths == 0 then
    paths[1] = route .. "deployment_key=" .. key .. "&app_version=1.0.0" .. client .. client_prefix
  end
end

function request()
  counter = counter + 1
  if expo then
    local headers = expo.states[(counter % #expo.states) + 1]
    -- a returning device is the same id with the same state: the pool is a multiple of the states
    local device = expo.pool and (counter % expo.pool) or counter
    headers["EAS-Client-ID"] = client_prefix .. string.format("%010d", device)
    return wrk.format("GET", expo.path, headers)
  end
  local path = paths[(counter % #paths) + 1] .. string.format("%010d", counter)
  return wrk.format("GET", path)
end
