import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange } from '@urql/core'
import { ref } from 'vue'
import { createClient as createWSClient, type Client as WSClient } from 'graphql-ws'
import { ElMessage } from 'element-plus'
import { csrfToken } from './csrf'
import { errorMessage } from './errors'
import { forgetSession } from './auth'
import { i18n } from '@/i18n'
import { router } from '@/router'

let ws: WSClient | null = null

// socketUp is true while the subscription websocket is connected; screens
// that subscribe fall back to polling while it is not.
export const socketUp = ref(false)

function wsClient(): WSClient {
  if (!ws) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    ws = createWSClient({
      url: `${proto}//${location.host}/graphql`,
      connectionParams: () => ({ csrfToken: csrfToken() }),
      lazy: true,
      retryAttempts: 5,
      on: {
        connected: () => { socketUp.value = true },
        closed: () => { socketUp.value = false },
      },
    })
  }
  return ws
}

// createClient builds the one GraphQL client of the app. Every request
// carries the CSRF header; every error is shown to the user as a message;
// UNAUTHENTICATED sends the user back to sign-in.
export function createClient(): Client {
  return new Client({
    url: '/graphql',
    preferGetMethod: false,
    requestPolicy: 'cache-and-network',
    fetchOptions: () => ({
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': csrfToken() },
    }),
    exchanges: [
      mapExchange({
        onError(error, operation) {
          const unauth = error.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED') ||
            (error.response as Response | undefined)?.status === 401
          if (unauth) {
            forgetSession()
            if (router.currentRoute.value.name !== 'signin') {
              void router.push({ name: 'signin', query: { next: router.currentRoute.value.fullPath } })
            }
            return
          }
          if (operation.context.quiet) return
          ElMessage({
            type: 'error',
            message: errorMessage(error, i18n.global.t('common.networkError')),
            showClose: true,
            grouping: true,
          })
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' }
          return {
            subscribe(sink) {
              const unsubscribe = wsClient().subscribe(input, sink)
              return { unsubscribe }
            },
          }
        },
      }),
    ],
  })
}
