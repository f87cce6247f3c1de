// Type declarations of the MTM Consult embed SDK (/sdk/mtm-consult.js; docs/embed.md).

export type Role = "pharmacist" | "clinician" | "patient";

/** The call page's states, in the order a participant usually goes through them. */
export type CallState =
  | "prejoin"
  | "joining"
  | "waiting"
  | "in-call"
  | "ended"
  | "denied"
  | "removed"
  | "replaced"
  | "error";

export type Language = "en" | "es";

export interface Theme {
  /** "#rrggbb" or "#rgb"; white text on it needs a contrast of 4.5:1 (WCAG AA). */
  accent?: string;
  /** Show the product mark (default true). */
  logo?: boolean;
  /** Show the medication panel (default true). */
  panel?: boolean;
}

export interface FrameOptions {
  /** The participant's link: https://…/c/<token> (as the REST API gives it) or /embed/<token>. */
  url: string;
  theme?: Theme;
  language?: Language;
  /** The iframe's accessible title (default "Video consult"). */
  title?: string;
  /** How long to wait for the call page to answer before an `embed_unavailable` error (default 15000). */
  readyTimeoutMs?: number;
  /** How long a command may take before it rejects with `timeout` (default 15000). */
  commandTimeoutMs?: number;
}

/** Someone in the consult, as the participant in the frame sees them. */
export interface Person {
  id: string;
  role: Role;
  display_name: string;
}

export interface ReadyInfo {
  /** null on an error page (expired link, ended consult, bad theme). */
  participant_id: string | null;
  role: Role | null;
  state: CallState;
  version: 1;
}

export interface ErrorInfo {
  /** e.g. invalid_message, message_too_large, unknown_command, invalid_args, forbidden,
   * not_waiting, not_joined, join_refused, no_device, unavailable, embed_unavailable,
   * expired_token, consult_ended, invalid_theme (docs/embed.md lists them all). */
  code: string;
  message: string;
  /** The command refused, when the error answers one. */
  command?: string;
  /** The refused command's id (the SDK rejects that command's promise with it). */
  id?: string;
}

export interface EventMap {
  ready: ReadyInfo;
  state: { state: CallState };
  joined: { participant_id: string; role: Role; participants: Person[] };
  "participant-joined": { participant: Person };
  "participant-left": { participant_id: string; reason: string | null };
  /** Who waits to be admitted (pharmacists only: the waiting room is theirs to run). */
  "participant-waiting": { waiting: Person[] };
  "medication-changed": {
    seq: number;
    medication_id: string;
    op: "add" | "set" | "move" | "derived";
    /** The field changed (never its value); null for an add. */
    field: string | null;
    by_role: Role | null;
    /** Only when the clinic's `medication_names_in_events` is on. */
    name?: string;
  };
  "recommendation-decided": {
    seq: number;
    recommendation_id: string;
    decision: "accepted" | "declined" | "no-response";
    medication_id: string | null;
    by_role: Role | null;
  };
  "consult-ended": Record<string, never>;
  error: ErrorInfo;
}

export declare class MtmConsultError extends Error {
  readonly code: string;
  readonly command?: string;
  constructor(code: string, message: string, command?: string);
}

export declare class ConsultFrame {
  /** The call's iframe: size and style it as you like. */
  readonly iframe: HTMLIFrameElement;
  /** The call's origin: the only origin messages go to and are accepted from. */
  readonly origin: string;
  /** Who is in the frame, once it answered. */
  readonly info: ReadyInfo | null;
  ready(): Promise<ReadyInfo>;
  on<K extends keyof EventMap>(event: K, handler: (data: EventMap[K]) => void): () => void;
  off<K extends keyof EventMap>(event: K, handler: (data: EventMap[K]) => void): void;
  join(displayName: string): Promise<{ state: "in-call" | "waiting" }>;
  setMuted(muted: boolean): Promise<{ muted: boolean }>;
  setCamera(on: boolean): Promise<{ on: boolean }>;
  leave(): Promise<{ state: CallState }>;
  admit(participantId: string): Promise<{ ok: true }>;
  deny(participantId: string): Promise<{ ok: true }>;
  showPanel(): Promise<{ visible: true }>;
  hidePanel(): Promise<{ visible: false }>;
  setLanguage(language: Language): Promise<{ language: Language }>;
  destroy(): void;
}

export declare function createFrame(parentElement: Element, options: FrameOptions): ConsultFrame;

/** The embed address (/embed/<token>?theme…) for a participant's link. */
export declare function embedUrl(options: FrameOptions): URL;
