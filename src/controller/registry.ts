import { apiAccessArea } from "./apiaccess.js";
import type { AreaFactory } from "./areas.js";
import { auditPolicyArea } from "./auditpolicy.js";
import { clusterVersionArea } from "./clusterversion.js";
import { controlPlaneArea } from "./controlplane.js";
import { credentialsArea } from "./credentials.js";
import { encryptionArea } from "./encryption.js";
import { exemptionExpiryArea } from "./exemptions.js";
import { nodeIsolationArea } from "./nodeisolation.js";
import { fileIntegrityArea } from "./fileintegrity.js";

/**
 * Every area the operator runs besides the namespaced children, in the order their reports are folded
 * into status. An area lands by adding its factory here; nothing else in the controller changes.
 */
export const AREAS: readonly AreaFactory[] = [
  auditPolicyArea,
  encryptionArea,
  controlPlaneArea(),
  clusterVersionArea(),
  credentialsArea(),
  nodeIsolationArea(),
  apiAccessArea(),
  exemptionExpiryArea,
  fileIntegrityArea,
];
