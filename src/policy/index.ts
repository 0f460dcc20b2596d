export * from './schema.ts';
export * from './load.ts';
export * from './identity.ts';
export * from './effective.ts';
export * from './labels.ts';
export * from './units.ts';
export * from './ownership.ts';
