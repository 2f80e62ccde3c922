import type { AreaFactory } from "./areas.js";
import { auditPolicyArea } from "./auditpolicy.js";
import { controlPlaneArea } from "./controlplane.js";
import { encryptionArea } from "./encryption.js";
import { fileIntegrityArea } from "./fileintegrity.js";

/**
 * Every area the operator runs besides the namespaced children, in the order their reports are folded
 * into status. An area lands by adding its factory here; nothing else in the controller changes.
 */
export const AREAS: readonly AreaFactory[] = [
  auditPolicyArea,
  encryptionArea,
  controlPlaneArea(),
  fileIntegrityArea,
];
