import { Writable } from 'node:stream';
import { createLogger, maskIdentifier } from './logger';

describe('structured logs', () => {
  test('mask MSISDN, IMSI, ICCID and EID to their last four digits and redact secrets', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(chunk.toString()); done(); } });
    const testLogger = createLoggerTo(sink);
    testLogger.info({ msisdn: '4915112345678', imsi: '262011234567890', line: { iccid: '8949000000000000123' }, apiKey: 'mvno_secret' }, 'activated');
    const entry = JSON.parse(lines[lines.length - 1]);
    expect(entry.msisdn).toBe('*********5678');
    expect(entry.imsi).toBe('***********7890');
    expect(entry.line.iccid).toBe('***************0123');
    expect(entry.apiKey).toBe('[redacted]');
    expect(entry.level).toBe('info');
    expect(JSON.stringify(entry)).not.toContain('4915112345678');
  });

  test('short values are left alone', () => {
    expect(maskIdentifier('123')).toBe('123');
    expect(maskIdentifier(undefined)).toBeUndefined();
  });
});

function createLoggerTo(stream: Writable) {
  return createLogger({ level: 'info', destination: stream });
}
