export * from './tools.ts';
export * from './proc.ts';
export * from './users.ts';
export * from './dockerd.ts';
export * from './nvidia-smi.ts';
export * from './api-proxy.ts';
export * from './face.ts';
export * from './raw.ts';
