/**
 * Owners of containers, volumes and networks as the face needs them, with
 * the ownership module's evidence rules (ownership/detect.ts) and the
 * policy's one rule (policy/ownership.ts mayActOn) deciding.
 *
 * A single container is resolved the way dockerd resolves it: by asking
 * dockerd (inspect through the upstream), so a name, a full id or a unique
 * id prefix means what it means to dockerd; anything dockerd cannot resolve
 * (not found, an ambiguous prefix) is answered with dockerd's own error and
 * nothing is forwarded. Lists are judged from the list itself plus one
 * image-label read: no inspect per container.
 */
import { z } from 'zod';
import { ContainerDetails, parseContainerList } from '../docker/gateway.ts';
import { detectOwner, subjectOfInspect, type Owner } from '../ownership/detect.ts';
import { hostFacts, imagesToCheck, ownersOfList } from '../ownership/facts.ts';
import type { Upstream, JsonReply } from './upstream.ts';
import { daemonMessage, UpstreamError } from './upstream.ts';
import type { UserDb } from './users.ts';

const IMAGE_CACHE_MAX = 20_000;

export type Resolved<T> = { found: true; value: T; owner: Owner } | { found: false; reply: JsonReply };

const ImageRow = z.looseObject({ Id: z.string(), Labels: z.record(z.string(), z.string()).nullable().optional() });

export class Owners {
  /** Labels of image ids: an image's labels never change, so entries stay until the cache is full. */
  private imageLabels = new Map<string, Record<string, string>>();

  constructor(
    private readonly up: Upstream,
    private readonly users: UserDb,
  ) {}

  /** One container by any reference dockerd accepts, with its owner. */
  async container(ref: string, prefix: string): Promise<Resolved<ContainerDetails>> {
    const r = await this.up.get(`/containers/${encodeURIComponent(ref)}/json`);
    if (r.status !== 200) return { found: false, reply: r };
    const parsed = ContainerDetails.safeParse(r.body);
    if (!parsed.success) throw new UpstreamError(`dockerd's inspect of ${ref} has an unexpected shape: ${parsed.error.issues[0]?.message}`);
    const [owner] = await this.judge([parsed.data], prefix);
    return { found: true, value: parsed.data, owner: owner! };
  }

  /** Owners of the rows of a container list (GET /containers/json, /system/df), in order: one image-label read, no inspect. */
  async ofList(rows: unknown[], prefix: string): Promise<Owner[]> {
    const reader = { imageLabels: (ids: string[]) => this.labelsOf(ids) };
    return (await ownersOfList(reader, parseContainerList(rows), prefix, this.users.lookup)).owners;
  }

  private async judge(containers: ContainerDetails[], prefix: string): Promise<Owner[]> {
    const images = await this.labelsOf(imagesToCheck(containers.map(subjectOfInspect), prefix));
    const facts = hostFacts(images, this.users.lookup);
    return containers.map((c) => detectOwner(c, prefix, facts));
  }

  /** Labels of these image ids: from the cache, else one read (inspect for one image, the image list for more). */
  private async labelsOf(ids: string[]): Promise<Map<string, Record<string, string>>> {
    const wanted = ids.filter((id) => !this.imageLabels.has(id));
    if (wanted.length === 1) await this.readImage(wanted[0]!);
    else if (wanted.length) await this.readImages();
    return this.imageLabels;
  }

  private async readImage(id: string): Promise<void> {
    const r = await this.up.get(`/images/${encodeURIComponent(id)}/json`);
    if (r.status !== 200) return; // a removed image: its labels prove nothing either way
    const img = ImageRow.safeParse({ ...(r.body as object), Labels: (r.body as { Config?: { Labels?: unknown } })?.Config?.Labels ?? null });
    if (img.success) this.remember(img.data.Id, img.data.Labels ?? {});
  }

  private async readImages(): Promise<void> {
    const r = await this.up.get('/images/json?all=1');
    if (r.status !== 200) throw new UpstreamError(`dockerd's image list failed: ${daemonMessage(r)}`);
    const rows = z.array(ImageRow).safeParse(r.body);
    if (!rows.success) throw new UpstreamError(`dockerd's image list has an unexpected shape: ${rows.error.issues[0]?.message}`);
    for (const img of rows.data) this.remember(img.Id, img.Labels ?? {});
  }

  private remember(id: string, labels: Record<string, string>): void {
    if (this.imageLabels.size >= IMAGE_CACHE_MAX) this.imageLabels.clear();
    this.imageLabels.set(id, labels);
  }
}

/** The owner of a volume or network: its `<p>.user` label (set by the face at create; images cannot label these). */
export function labelOwner(labels: Record<string, string> | null | undefined, prefix: string): Owner {
  const user = labels?.[`${prefix}.user`];
  if (user) return { user, uid: undefined, method: 'label', evidence: `label ${prefix}.user=${user}`, rejected: [] };
  return { user: undefined, uid: undefined, method: 'none', evidence: 'no owner label', rejected: [] };
}
