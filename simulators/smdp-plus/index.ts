export { createSmdpPlusSimulator } from './simulator';
export type {
  SmdpPlusSimulator,
  SmdpPlusSimulatorOptions,
  AutoDeviceOptions,
  DeviceDownloadInput,
  DeviceDownloadResult,
  ProfileView,
  SmdpFaults,
  NotificationRecord,
  ProfileState,
} from './simulator';
export { SmdpFaultsSchema, FaultBook } from './faults';
