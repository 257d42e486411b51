// The emulator's project (src/tools/emulator) as a test sets it up around a run: resources written
// and read straight in its store, as the server's own system would (no token, no access checks),
// the way FakeMedplum's `put` and `bot` are used. What the tools then do goes over HTTP.
import type { WithId } from '@medplum/core';
import type { Bot, Project, ProjectMembership, ProjectSetting, Resource } from '@medplum/fhirtypes';
import { EMULATOR_PROJECT_ID } from '../../src/tools/emulator/identity';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { deployedCodeIn, MEDBLOCKS_KEY } from './fake-servers';

export class EmulatorProject {
  constructor(readonly emulator: RunningEmulator) {}

  /** Creates or updates (keeping the id) in the emulator's project. */
  async put<T extends Resource>(resource: T): Promise<WithId<T>> {
    const repo = this.emulator.store.repo;
    const scoped = { ...resource, meta: { ...resource.meta, project: EMULATOR_PROJECT_ID } };
    return resource.id ? repo.updateResource(scoped) : repo.createResource(scoped);
  }

  async remove(type: Resource['resourceType'], id: string): Promise<void> {
    await this.emulator.store.repo.deleteResource(type, id);
  }

  all<T extends Resource>(type: T['resourceType']): Promise<WithId<T>[]> {
    return this.emulator.store.all<T>(type);
  }

  /** The Bot of that name as stored now (seeded by the emulator or created by provision). */
  async bot(name: string): Promise<WithId<Bot>> {
    const bot = (await this.all<Bot>('Bot')).find((b) => b.name === name);
    if (!bot) throw new Error(`no bot ${name}`);
    return bot;
  }

  async membership(botId: string): Promise<WithId<ProjectMembership>> {
    const all = await this.all<ProjectMembership>('ProjectMembership');
    const membership = all.find((m) => m.profile.reference === `Bot/${botId}`);
    if (!membership) throw new Error(`no membership for ${botId}`);
    return membership;
  }

  /** The code a Bot's executableCode points at, as stored (ADM-12: `Binary/{id}`). */
  deployedCode(bot: Bot): Promise<string | undefined> {
    return deployedCodeIn(this.emulator.store.repo, bot);
  }

  project(): Promise<WithId<Project>> {
    return stored(this.emulator.store.repo.readResource<Project>('Project', EMULATOR_PROJECT_ID));
  }

  async secrets(): Promise<ProjectSetting[]> {
    return (await this.project()).secret ?? [];
  }

  async setSecrets(secret: ProjectSetting[]): Promise<void> {
    await this.put({ ...(await this.project()), secret });
  }

  async setFeatures(features: Project['features']): Promise<void> {
    await this.put({ ...(await this.project()), features });
  }
}

/** A read resource, which the store always gives an id. */
async function stored<T extends Resource>(read: Promise<T>): Promise<WithId<T>> {
  const resource = await read;
  if (!resource.id) throw new Error(`the store answered a ${resource.resourceType} without an id`);
  return resource as WithId<T>;
}

/**
 * What `npm run dev` prints for the tools: the emulator's URL and admin client (ADM-7), and, given
 * a Medblocks, its URL and the key the fakes use.
 */
export function emulatorEnv(emulator: RunningEmulator, medblocks?: { readonly url: string }): NodeJS.ProcessEnv {
  return {
    MEDPLUM_BASE_URL: `${emulator.url}/`,
    MEDPLUM_CLIENT_ID: emulator.adminClient.clientId,
    MEDPLUM_CLIENT_SECRET: emulator.adminClient.clientSecret,
    ...(medblocks ? { MEDBLOCKS_API_KEY: MEDBLOCKS_KEY, MEDBLOCKS_API_BASE_URL: medblocks.url } : {}),
  };
}
