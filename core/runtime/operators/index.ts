export { mapAsync } from './map-async.js';
export { fromIterableWithBackpressure } from './from-iterable.js';
