export { PushService, type PushJob, type Enqueue } from './service';
export { PUSH_CHANNELS, PushRefused, pushChannels, type PushChannel } from './push';
export { enqueuePushJobs } from './enqueue';
