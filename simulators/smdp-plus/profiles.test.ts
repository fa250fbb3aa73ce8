import { generateMatchingId, luhnCheckDigit, ProfileStore } from './profiles';

function luhnValid(n: string): boolean {
  return luhnCheckDigit(n.slice(0, -1)) === Number(n.at(-1));
}

describe('ProfileStore', () => {
  it('generates 20-digit ICCIDs with the prefix and a valid Luhn digit', () => {
    expect(luhnCheckDigit('7992739871')).toBe(3); // the classic Luhn example
    const store = new ProfileStore({ iccidPrefix: '898801', iccidSerialStart: 1 });
    const a = store.downloadOrder({ profileType: 't' });
    const b = store.downloadOrder({ profileType: 't' });
    if (!a.ok || !b.ok) throw new Error('refused');
    expect(a.value.iccid).toBe('89880100000000000016');
    expect(b.value.iccid).toMatch(/^898801\d{14}$/);
    expect(luhnValid(a.value.iccid) && luhnValid(b.value.iccid)).toBe(true);
  });

  it('generates Matching IDs in the Activation Code alphabet', () => {
    for (let i = 0; i < 20; i++) expect(generateMatchingId()).toMatch(/^[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}$/);
  });

  it('knows its Profile Types and how many it may generate', () => {
    const store = new ProfileStore({ profileTypes: ['standard', 'iot'], maxProfilesPerType: 1, iccidSerialStart: 1 });
    expect(store.downloadOrder({ profileType: 'unknown' })).toMatchObject({ ok: false, refusal: { subjectCode: '8.2.5', reasonCode: '3.9' } });
    expect(store.downloadOrder({ profileType: 'iot' }).ok).toBe(true);
    expect(store.downloadOrder({ profileType: 'iot' })).toMatchObject({ ok: false, refusal: { subjectCode: '8.2.5', reasonCode: '3.7' } });
    // Without a type the first configured one is used.
    const d = store.downloadOrder({});
    expect(d.ok && store.get(d.value.iccid)?.profileType).toBe('standard');
  });

  it('seeds profiles, checks the type of an ordered ICCID, adopts unknown ICCIDs when asked', () => {
    const store = new ProfileStore({ seedProfiles: [{ iccid: '89880199999999999990', profileType: 'iot' }] });
    expect(store.downloadOrder({ iccid: '89880199999999999990', profileType: 'standard' })).toMatchObject({
      ok: false,
      refusal: { subjectCode: '8.2.5', reasonCode: '3.8' },
    });
    expect(store.downloadOrder({ iccid: '89880199999999999990' })).toMatchObject({ ok: true });
    expect(store.downloadOrder({ iccid: '89880111111111111111' })).toMatchObject({ ok: false, refusal: { reasonCode: '3.9' } });
    const adopting = new ProfileStore({ adoptUnknownIccids: true });
    expect(adopting.downloadOrder({ iccid: '89880111111111111111' })).toMatchObject({ ok: true });
    expect(adopting.get('89880111111111111111')?.state).toBe('Allocated');
  });

  it('walks the whole state machine', () => {
    const store = new ProfileStore({ iccidSerialStart: 1 });
    const o = store.downloadOrder({ profileType: 't', eid: '89049032000000000000000000000001' });
    if (!o.ok) throw new Error('refused');
    const iccid = o.value.iccid;
    expect(store.get(iccid)?.state).toBe('Linked');
    const c = store.confirmOrder({ iccid, releaseFlag: false, matchingId: '' });
    expect(c).toMatchObject({ ok: true, value: { matchingId: '', eid: '89049032000000000000000000000001' } });
    expect(store.findForDownload({ eid: '89049032000000000000000000000001' })).toMatchObject({ ok: false, refusal: { subjectCode: '8.1.1' } });
    expect(store.releaseProfile({ iccid }).ok).toBe(true);
    const found = store.findForDownload({ eid: '89049032000000000000000000000001' });
    expect(found.ok && found.value.iccid).toBe(iccid);
    expect(store.advance(iccid, 'Installed', '89049032000000000000000000000001').ok).toBe(false);
    expect(store.advance(iccid, 'Downloaded', '89049032000000000000000000000002')).toMatchObject({ ok: false, refusal: { reasonCode: '3.10' } });
    expect(store.advance(iccid, 'Downloaded', '89049032000000000000000000000001').ok).toBe(true);
    store.fail(iccid, { subjectCode: '8.2.10', reasonCode: '4.2', message: 'boom' });
    expect(store.get(iccid)?.state).toBe('Error');
    expect(store.advance(iccid, 'Downloaded', '89049032000000000000000000000001').ok).toBe(true);
    expect(store.advance(iccid, 'Installed', '89049032000000000000000000000001').ok).toBe(true);
    expect(store.advance(iccid, 'Enabled', '89049032000000000000000000000001').ok).toBe(true);
    expect(store.get(iccid)).toMatchObject({ state: 'Enabled', downloadAttempts: 2 });
    expect(store.cancelOrder({ iccid, finalProfileStatusIndicator: 'Available' })).toMatchObject({ ok: false, refusal: { reasonCode: '3.3' } });
  });
});
