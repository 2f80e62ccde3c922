-- Argo CD health check for security.csp-operator.io/ClusterSecurityPolicy.
-- Install as resource.customizations.health.security.csp-operator.io_ClusterSecurityPolicy (see README).
-- Uses only Lua's base library: Argo CD opens no string library for health scripts.
--   status missing, or observedGeneration behind metadata.generation   -> Progressing
--   Ready False                                                         -> Degraded (Ready's message)
--   Compliant False                                                     -> Degraded (Compliant's message)
--   Ready Unknown or absent                                             -> Progressing
--   otherwise                                                           -> Healthy
local hs = {}
local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status
if status == nil or status.observedGeneration == nil or status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end
local ready = nil
local compliant = nil
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then
      ready = c
    elseif c.type == "Compliant" then
      compliant = c
    end
  end
end
local function describe(c)
  local text = c.type .. " " .. tostring(c.status)
  if c.reason ~= nil and c.reason ~= "" then
    text = text .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
if compliant ~= nil and compliant.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(compliant)
  return hs
end
if ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  if ready == nil then
    hs.message = "Waiting for the Ready condition"
  else
    hs.message = describe(ready)
  end
  return hs
end
hs.status = "Healthy"
hs.message = "Ready"
if compliant ~= nil and compliant.message ~= nil and compliant.message ~= "" then
  hs.message = compliant.message
end
return hs
