import { handleDownloadProgressInfoRequest, parseHandleDownloadProgressInfo } from './es2plus.client';
import { isRetryableStatusCode, NotificationPoint, notificationPointName } from './es2plus.types';

const valid = {
  header: { functionRequesterIdentifier: 'smdp-1', functionCallIdentifier: 'n-1' },
  eid: '89049032000000000000000000000001',
  iccid: '89880100000000000017',
  profileType: 'standard',
  timestamp: '2001-12-17T09:30:47Z',
  notificationPointId: 3,
  notificationPointStatus: { status: 'Executed-Success' },
};

describe('HandleDownloadProgressInfo parser', () => {
  it('turns a valid notification into a domain event', () => {
    const r = parseHandleDownloadProgressInfo(valid);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.notification).toMatchObject({
      functionRequesterIdentifier: 'smdp-1',
      functionCallIdentifier: 'n-1',
      iccid: '89880100000000000017',
      notificationPointId: 3,
      notificationPoint: 'BppDownload',
      status: 'Executed-Success',
      succeeded: true,
    });
    expect(r.notification.occurredAt.toISOString()).toBe('2001-12-17T09:30:47.000Z');
  });

  it('accepts a numeric-string notificationPointId and a failure with codes', () => {
    const r = parseHandleDownloadProgressInfo({
      ...valid,
      notificationPointId: '4',
      notificationPointStatus: { status: 'Failed', statusCodeData: { subjectCode: '8.2.10', reasonCode: '4.2', message: 'install failed' } },
    });
    expect(r.ok && r.notification).toMatchObject({ notificationPointId: 4, succeeded: false, statusCodeData: { subjectCode: '8.2.10', reasonCode: '4.2' } });
  });

  it('keeps unknown check points instead of rejecting them', () => {
    const r = parseHandleDownloadProgressInfo({ ...valid, notificationPointId: 42 });
    expect(r.ok && r.notification.notificationPoint).toBe('unknown');
  });

  it('rejects invalid notifications with the offending paths', () => {
    const r = parseHandleDownloadProgressInfo({ ...valid, iccid: 'abc', notificationPointStatus: { status: 'Done' } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => i.path).sort()).toEqual(['iccid', 'notificationPointStatus.status']);
    expect(r.missingElement).toBe(false);
    const m = parseHandleDownloadProgressInfo({ ...valid, header: undefined });
    expect(!m.ok && m.missingElement).toBe(true);
  });

  it('answers 204 when handled, a Failed header when invalid, 500 when the handler throws', async () => {
    const seen: string[] = [];
    expect(await handleDownloadProgressInfoRequest(valid, (n) => void seen.push(n.iccid))).toEqual({ httpStatus: 204 });
    expect(seen).toEqual(['89880100000000000017']);

    const missing = await handleDownloadProgressInfoRequest({ ...valid, iccid: undefined }, () => undefined);
    expect(missing.httpStatus).toBe(200);
    expect(missing.body).toMatchObject({ header: { functionExecutionStatus: { status: 'Failed', statusCodeData: { subjectCode: '1.6', reasonCode: '2.2' } } } });

    const unknown = await handleDownloadProgressInfoRequest(valid, () => undefined, { allowedRequesters: ['other'] });
    expect(unknown.body).toMatchObject({ header: { functionExecutionStatus: { statusCodeData: { subjectCode: '1.1', reasonCode: '1.1' } } } });

    const broken = await handleDownloadProgressInfoRequest(valid, () => {
      throw new Error('db down');
    });
    expect(broken.httpStatus).toBe(500);
  });
});

describe('ES2+ codes', () => {
  it('names notification points', () => {
    expect(notificationPointName(NotificationPoint.EligibilityAndRetryLimitCheck)).toBe('EligibilityAndRetryLimitCheck');
    expect(notificationPointName(2)).toBe('ConfirmationFailure');
    expect(notificationPointName(4)).toBe('BppInstallation');
  });

  it('classifies transient status codes', () => {
    expect(isRetryableStatusCode('1.2', '4.4')).toBe(true);
    expect(isRetryableStatusCode('1.2', '4.2')).toBe(true);
    expect(isRetryableStatusCode('8.9', '5.1')).toBe(true);
    expect(isRetryableStatusCode('8.2.1', '3.9')).toBe(false);
    expect(isRetryableStatusCode('8.2.5', '3.7')).toBe(false);
  });
});
