// The emulator's project (src/tools/emulator) as a test sets it up around a run: resources written
// and read straight in its store, as the server's own system would (no token, no access checks),
// the way FakeMedplum's `put` and `bot` are used. What the tools then do goes over HTTP.
import type { WithId } from '@medplum/core';
import type { Bot, Project, ProjectSetting, Resource } from '@medplum/fhirtypes';
import { EMULATOR_PROJECT_ID } from '../../src/tools/emulator/identity';
import type { RunningEmulator } from '../../src/tools/emulator/server';

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

  /** The Bot of that name as stored now. */
  bot(name: string): Promise<WithId<Bot>> {
    return stored(this.emulator.store.repo.readResource<Bot>('Bot', this.emulator.bot(name).botId));
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
