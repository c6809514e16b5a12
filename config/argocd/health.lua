-- Argo CD health check for kms.kmsoperator.io/v1alpha1 Key, ReplicaKey, Alias and Grant.
-- The same script serves the four kinds (docs/argocd-health.md).
-- Reasons: api/v1alpha1/common_types.go.
hs = {}
local waiting = {
  Updating = true, WaitingForKey = true, Throttled = true, ReconcileError = true,
  Propagating = true, WaitingForSecret = true, WaitingForReplicas = true,
}
-- Ready=False reasons of an object whose deletion the operator holds back
-- (a Key's spec.deletionProtection): it stays until a person acts or time
-- passes, which the deletion's Progressing would hide.
local held = {
  DeletionProtected = true, StillReferenced = true, InUse = true,
}
local function describe(c)
  local m = c.reason or "Unknown"
  if c.message ~= nil and c.message ~= "" then
    m = m .. ": " .. c.message
  end
  return m
end
local function condition(typ)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == typ then
      return c
    end
  end
  return nil
end
local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  local r = condition("Ready")
  if r ~= nil and r.status == "False" and held[r.reason] and (r.observedGeneration == nil or r.observedGeneration == generation) then
    hs.status = "Degraded"
    hs.message = "Deletion held: " .. describe(r)
    return hs
  end
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator is cleaning up the KMS resource"
  return hs
end
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
if obj.status.observedGeneration == nil or obj.status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local ready = condition("Ready")
local synced = condition("Synced")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.observedGeneration ~= nil and ready.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Ready condition describes generation " .. ready.observedGeneration .. ", not " .. generation
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  if synced ~= nil and synced.status == "False" then
    hs.message = hs.message .. " (last sync failed, retrying: " .. describe(synced) .. ")"
  end
  return hs
end
if ready.status == "False" and not waiting[ready.reason] then
  -- InvalidSpec, InvalidKeyState, Conflict, AdoptionRefused, ReferenceRefused,
  -- NotFound, Drifted (Observe), AccessDenied, ...: a person must act.
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
hs.status = "Progressing"
hs.message = describe(ready)
return hs
