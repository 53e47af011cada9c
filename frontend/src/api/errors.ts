import type { CombinedError } from '@urql/core'

// errorMessage turns a GraphQL or network error into one readable line. The
// server's messages are written for users; network failures get a generic
// sentence from the caller's i18n.
export function errorMessage(err: CombinedError | Error | null | undefined, networkFallback: string): string {
  if (!err) return ''
  const ce = err as CombinedError
  if (ce.graphQLErrors && ce.graphQLErrors.length > 0) {
    return ce.graphQLErrors.map((e) => e.message).join('; ')
  }
  if (ce.networkError) return networkFallback
  return err.message || networkFallback
}

// errorCode returns extensions.code of the first GraphQL error, if any.
export function errorCode(err: CombinedError | null | undefined): string | undefined {
  const code = err?.graphQLErrors?.[0]?.extensions?.code
  return typeof code === 'string' ? code : undefined
}
