/**
 * client-server "User Directory" (users.yaml):
 *   POST /_matrix/client/v3/user_directory/search
 * Searches local users by user ID and display name, case-insensitively.
 * The spec's minimum set: users who share a room with the searcher and users
 * in rooms anyone may see (public join rule or world-readable history);
 * with user_directory.search_all_users, every local user. Deactivated and
 * guest accounts never appear.
 */
import { Type } from '@sinclair/typebox';
import type { Account } from '../../storage/account-store.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../errors.js';
import { defineRoute, MatrixErrorBody, reply } from '../http/route.js';

export const DEFAULT_SEARCH_LIMIT = 10;
export const MAX_SEARCH_LIMIT = 50;
/** How many matching accounts one search examines for visibility; past this the answer says `limited`. */
const CANDIDATES_EXAMINED = 1000;

const SearchResult = Type.Object({
  user_id: Type.String({ description: "The user's matrix user ID." }),
  display_name: Type.Optional(Type.String({ description: 'The display name of the user, if one exists.' })),
  avatar_url: Type.Optional(Type.String({ description: 'The avatar url, as an mxc:// URI, if one exists.' })),
});

async function visibleMatches(
  hs: HomeserverContext,
  searcher: string,
  term: string,
  wanted: number,
): Promise<{ accounts: Account[]; mayHaveMore: boolean }> {
  if (hs.config.user_directory.search_all_users) {
    const accounts = await hs.storage.accounts.searchAccounts(term, wanted);
    return { accounts, mayHaveMore: false };
  }
  const candidates = await hs.storage.accounts.searchAccounts(term, CANDIDATES_EXAMINED);
  const roomMates = await hs.membership.usersSharingRoomWith(searcher);
  const accounts: Account[] = [];
  for (const account of candidates) {
    if (roomMates.has(account.userId) || (await hs.membership.isInPublicRoom(account.userId))) {
      accounts.push(account);
      if (accounts.length === wanted) return { accounts, mayHaveMore: false };
    }
  }
  return { accounts, mayHaveMore: candidates.length === CANDIDATES_EXAMINED };
}

export const searchUserDirectory = defineRoute({
  method: 'POST',
  path: '/_matrix/client/v3/user_directory/search',
  operationId: 'searchUserDirectory',
  summary: 'Searches the user directory.',
  description:
    'Matches user IDs and display names case-insensitively among users who share a room with you or are in ' +
    `public rooms (every local user when the server is configured so). At most ${MAX_SEARCH_LIMIT} results.`,
  tags: ['User directory'],
  resource: 'client',
  auth: 'access-token',
  rateLimit: 'client',
  request: {
    body: Type.Object(
      {
        search_term: Type.String({ description: 'The term to search for.', maxLength: 1000 }),
        limit: Type.Optional(
          Type.Integer({
            minimum: 0,
            description: `The maximum number of results to return. Defaults to ${DEFAULT_SEARCH_LIMIT}; at most ${MAX_SEARCH_LIMIT}.`,
          }),
        ),
      },
      { additionalProperties: true },
    ),
  },
  responses: {
    200: Type.Object(
      {
        results: Type.Array(SearchResult, { description: 'The matching users, ordered by user ID.' }),
        limited: Type.Boolean({
          description: 'Indicates if the result list has been truncated by the limit.',
        }),
      },
      { description: 'The results of the search.' },
    ),
    400: MatrixErrorBody,
    403: MatrixErrorBody,
    429: MatrixErrorBody,
  },
  async handler(req, hs) {
    if (req.requester.isGuest) {
      throw MatrixError.of('M_GUEST_ACCESS_FORBIDDEN', 'Guests cannot search the user directory');
    }
    const limit = Math.min(req.body.limit ?? DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT);
    const term = req.body.search_term.trim();
    // One more than the limit tells whether the limit cut the list.
    const { accounts, mayHaveMore } = await visibleMatches(hs, req.requester.userId, term, limit + 1);
    return reply(200, {
      results: accounts.slice(0, limit).map((account) => ({
        user_id: account.userId,
        ...(account.displayName !== null ? { display_name: account.displayName } : {}),
        ...(account.avatarUrl !== null ? { avatar_url: account.avatarUrl } : {}),
      })),
      limited: accounts.length > limit || mayHaveMore,
    });
  },
});

export const userDirectoryRoutes = [searchUserDirectory];
